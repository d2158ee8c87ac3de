package org.fhirlab.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect;
import jakarta.persistence.EntityManagerFactory;
import org.hibernate.boot.model.naming.CamelCaseToUnderscoresNamingStrategy;
import org.hibernate.cfg.AvailableSettings;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.autoconfigure.jdbc.DataSourceProperties;
import org.springframework.boot.autoconfigure.orm.jpa.JpaProperties;
import org.springframework.boot.orm.jpa.hibernate.SpringImplicitNamingStrategy;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

import java.util.HashMap;
import java.util.Map;
import javax.sql.DataSource;

/**
 * JPA plumbing for HAPI: the entity manager factory and the transaction manager.
 *
 * <p>The DataSource itself is Spring Boot's (HikariCP, from {@code spring.datasource.*}). Hibernate
 * settings come from {@code spring.jpa.properties.*} (Boot's {@link JpaProperties}); what is not set
 * there gets the same defaults the official image uses, so both create the same schema.
 */
@Configuration
public class PersistenceConfig {

	private static final Logger ourLog = LoggerFactory.getLogger(PersistenceConfig.class);

	/**
	 * HAPI needs its own entity manager factory: {@link HapiEntityManagerFactoryUtil} sets HAPI's JPA
	 * dialect (error translation), the entity packages to scan and a persistence provider that
	 * registers HAPI's sequence and dialect services in Hibernate. {@code @Primary} so that it is the
	 * one HAPI's {@code @Autowired} fields and Boot's JPA auto-configuration (which then backs off) see.
	 */
	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory theBeanFactory,
			FhirContext theFhirContext,
			JpaStorageSettings theStorageSettings,
			JpaProperties theJpaProperties,
			DataSourceProperties theDataSourceProperties,
			DataSource theDataSource) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(theBeanFactory, theFhirContext, theStorageSettings);

		Map<String, Object> props = new HashMap<>(theJpaProperties.getProperties());
		// Same defaults as the official image (Boot's naming strategies, schema created/updated by
		// Hibernate at startup, no second-level cache).
		props.putIfAbsent(AvailableSettings.SCANNER, "org.hibernate.boot.archive.scan.internal.DisabledScanner");
		props.putIfAbsent(AvailableSettings.IMPLICIT_NAMING_STRATEGY, SpringImplicitNamingStrategy.class.getName());
		props.putIfAbsent(
				AvailableSettings.PHYSICAL_NAMING_STRATEGY, CamelCaseToUnderscoresNamingStrategy.class.getName());
		props.putIfAbsent(AvailableSettings.HBM2DDL_AUTO, "update");
		props.putIfAbsent(AvailableSettings.STATEMENT_BATCH_SIZE, "20");
		props.putIfAbsent(AvailableSettings.USE_SECOND_LEVEL_CACHE, "false");
		props.putIfAbsent(AvailableSettings.USE_QUERY_CACHE, "false");
		// Hibernate Search (Lucene / Elasticsearch full-text indexing) stays off: HAPI's normal
		// search runs on its own SQL index tables and does not need it.
		props.putIfAbsent("hibernate.search.enabled", "false");
		// HAPI reads the dialect back from this map (JpaConfig's HibernatePropertiesProvider bean), so
		// it must be set here rather than left to Hibernate's auto-detection.
		props.put(
				AvailableSettings.DIALECT,
				chooseDialect((String) props.get(AvailableSettings.DIALECT), theDataSourceProperties.getUrl()));

		factory.setPersistenceUnitName("HAPI_PU");
		factory.setJpaPropertyMap(props);
		factory.setDataSource(theDataSource);
		return factory;
	}

	/** HAPI's DAOs run in Spring-managed JPA transactions. */
	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory theEntityManagerFactory) {
		return new JpaTransactionManager(theEntityManagerFactory);
	}

	/**
	 * HAPI requires one of its own dialects ({@code HapiFhir*Dialect}). Use the configured one, unless
	 * it is missing or plainly belongs to another database than the JDBC URL (e.g. the H2 default
	 * left in place while the URL was overridden to PostgreSQL): then pick the one for the URL.
	 */
	static String chooseDialect(String theConfigured, String theJdbcUrl) {
		String url = theJdbcUrl == null ? "" : theJdbcUrl;
		String forUrl = null;
		if (url.startsWith("jdbc:h2:")) {
			forUrl = HapiFhirH2Dialect.class.getName();
		} else if (url.startsWith("jdbc:postgresql:")) {
			forUrl = HapiFhirPostgresDialect.class.getName();
		}
		if (theConfigured == null || theConfigured.isBlank()) {
			if (forUrl == null) {
				throw new IllegalStateException("spring.jpa.properties.hibernate.dialect is not set and cannot be "
						+ "derived from spring.datasource.url=" + url
						+ "; set it to one of HAPI's dialects, e.g. ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect");
			}
			return forUrl;
		}
		boolean h2Mismatch = url.startsWith("jdbc:postgresql:") && theConfigured.contains("H2");
		boolean pgMismatch = url.startsWith("jdbc:h2:") && theConfigured.contains("Postgres");
		if (h2Mismatch || pgMismatch) {
			ourLog.warn(
					"hibernate.dialect {} does not match spring.datasource.url {}; using {}",
					theConfigured,
					url,
					forUrl);
			return forUrl;
		}
		return theConfigured;
	}
}
